# tfhe targets
