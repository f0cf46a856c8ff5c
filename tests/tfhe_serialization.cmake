# tfhe serialization targets
fhegpt_add_test(test-tfhe-serialization SOURCES test-tfhe-serialization.cpp LIBS fhegpt_tfhe_serialization fhegpt_tfhe)
