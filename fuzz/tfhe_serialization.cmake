# tfhe serialization targets
fhegpt_add_fuzzer(fuzz-tfhe-deserialize SOURCES fuzz-tfhe-deserialize.cpp LIBS fhegpt_tfhe_serialization fhegpt_tfhe)
