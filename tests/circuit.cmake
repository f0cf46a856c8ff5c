# circuit targets: the integer circuit (encoding, exact low-bit removal, simulation, API errors).
fhegpt_add_test(test-circuit-core SOURCES test-circuit-core.cpp LIBS fhegpt_circuit)
