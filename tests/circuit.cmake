# circuit targets: the integer circuit (encoding, exact low-bit removal, simulation, API
# errors), the quantized head's, attention block's and whole blocks' circuits against their exact
# references and on ciphertexts.
fhegpt_add_test(test-circuit-core SOURCES test-circuit-core.cpp LIBS fhegpt_circuit)
fhegpt_add_test(test-circuit-head SOURCES test-circuit-head.cpp LIBS fhegpt_circuit)
fhegpt_add_test(test-circuit-attention SOURCES test-circuit-attention.cpp LIBS fhegpt_circuit)
fhegpt_add_test(test-circuit-blocks SOURCES test-circuit-blocks.cpp LIBS fhegpt_circuit)

# A head on the production set its noise analysis picks (full-size keys, about 1,400 bootstraps,
# 10 s on two cores): label `slow`, so that the sanitizer run can skip it (ctest -LE slow); the normal run
# includes it.
add_executable(test-circuit-production test-circuit-production.cpp)
target_link_libraries(test-circuit-production PRIVATE fhegpt_circuit GTest::gtest GTest::gtest_main)
gtest_discover_tests(test-circuit-production DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60
                     PROPERTIES TIMEOUT 1800 LABELS slow)
