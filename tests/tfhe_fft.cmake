# tfhe fft targets
