// Generation of binary secret keys from a secret RandomGenerator (RandomGenerator::from_os()).
#pragma once

#include "tfhe/commons/csprng.h"
#include "tfhe/commons/dimensions.h"
#include "tfhe/entities/glwe_secret_key.h"
#include "tfhe/entities/lwe_secret_key.h"

namespace fhegpt::tfhe {

LweSecretKey generate_binary_lwe_secret_key(LweDimension dimension, RandomGenerator & secret_generator);
GlweSecretKey generate_binary_glwe_secret_key(GlweDimension glwe_dimension, PolynomialSize polynomial_size,
                                              RandomGenerator & secret_generator);

} // namespace fhegpt::tfhe
