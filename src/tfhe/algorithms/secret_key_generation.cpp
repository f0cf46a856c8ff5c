#include "tfhe/algorithms/secret_key_generation.h"

namespace fhegpt::tfhe {

LweSecretKey generate_binary_lwe_secret_key(LweDimension dimension, RandomGenerator & secret_generator) {
    LweSecretKey key(dimension);
    secret_generator.fill_binary(key.data);
    return key;
}

GlweSecretKey generate_binary_glwe_secret_key(GlweDimension glwe_dimension, PolynomialSize polynomial_size,
                                              RandomGenerator & secret_generator) {
    GlweSecretKey key(glwe_dimension, polynomial_size);
    secret_generator.fill_binary(key.data);
    return key;
}

} // namespace fhegpt::tfhe
