# client/server protocol targets
fhegpt_add_fuzzer(fuzz-net-protocol SOURCES fuzz-net-protocol.cpp LIBS fhegpt_net)
