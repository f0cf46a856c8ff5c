# tfhe fft targets
fhegpt_add_test(test-tfhe-fft SOURCES test-tfhe-fft.cpp LIBS fhegpt_tfhe_fft)
