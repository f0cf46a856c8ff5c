#include "tfhe/algorithms/lookup_table_generation.h"

#include "common/check.h"
#include "tfhe/commons/torus.h"

#include <bit>
#include <vector>

namespace fhegpt::tfhe {

namespace {

// V[t] = g(j, m) for t in slot j of message m, -g(0, 0) on the top half slot (lookup_table.h).
LookupTable build(PolynomialSize polynomial_size, uint64_t input_modulus, uint64_t output_modulus,
                  size_t function_count, const std::function<uint64_t(size_t, uint64_t)> & torus_value) {
    const size_t n = polynomial_size.value;
    FHEGPT_CHECK(std::has_single_bit(n) && n >= 2, "polynomial size %zu is not a power of two", n);
    // p = 1 is a sign lookup: one box per half of the torus, f(0) or -f(0).
    FHEGPT_CHECK(std::has_single_bit(input_modulus) && input_modulus <= n,
                 "input modulus %llu is not a power of two in [1, N = %zu]", (unsigned long long)input_modulus, n);
    FHEGPT_CHECK(function_count >= 1 && function_count <= n / input_modulus,
                 "%zu functions do not fit in boxes of %zu coefficients", function_count,
                 static_cast<size_t>(n / input_modulus));
    LookupTable lut;
    lut.polynomial_size = polynomial_size;
    lut.input_modulus = input_modulus;
    lut.output_modulus = output_modulus;
    lut.function_count = function_count;
    const size_t box = n / input_modulus;
    const size_t slot = box / function_count;
    lut.slot_stride = slot;
    // The values of every (function, message), computed once.
    std::vector<uint64_t> values(function_count * input_modulus);
    for (size_t j = 0; j < function_count; ++j)
        for (uint64_t m = 0; m < input_modulus; ++m) values[j * input_modulus + m] = torus_value(j, m);
    lut.polynomial.resize(n);
    for (size_t t = 0; t < n; ++t) {
        const size_t u = t + slot / 2;
        if (u >= n) {
            lut.polynomial[t] = 0 - values[0];
            continue;
        }
        const uint64_t m = u / box;
        size_t j = (u % box) / slot;
        if (j >= function_count) j = function_count - 1; // unread remainder of the box
        lut.polynomial[t] = values[j * input_modulus + m];
    }
    return lut;
}

} // namespace

LookupTable generate_lookup_table(PolynomialSize polynomial_size, uint64_t input_modulus, uint64_t output_modulus,
                                  const MessageFunction & f) {
    FHEGPT_CHECK(is_valid_message_modulus(output_modulus), "output modulus %llu is not a power of two in [2, 2^32]",
                 (unsigned long long)output_modulus);
    return build(polynomial_size, input_modulus, output_modulus, 1, [&](size_t, uint64_t m) {
        return encode_message(f(m) & (output_modulus - 1), output_modulus);
    });
}

LookupTable generate_lookup_table_from_table(PolynomialSize polynomial_size, uint64_t input_modulus,
                                             uint64_t output_modulus, std::span<const uint64_t> table) {
    FHEGPT_CHECK_EQ(table.size(), input_modulus);
    return generate_lookup_table(polynomial_size, input_modulus, output_modulus, [&](uint64_t m) { return table[m]; });
}

LookupTable generate_torus_lookup_table(PolynomialSize polynomial_size, uint64_t input_modulus,
                                        const MessageFunction & torus_f) {
    return build(polynomial_size, input_modulus, 0, 1, [&](size_t, uint64_t m) { return torus_f(m); });
}

LookupTable generate_many_lookup_table(PolynomialSize polynomial_size, uint64_t input_modulus,
                                       uint64_t output_modulus, std::span<const MessageFunction> functions) {
    FHEGPT_CHECK(is_valid_message_modulus(output_modulus), "output modulus %llu is not a power of two in [2, 2^32]",
                 (unsigned long long)output_modulus);
    return build(polynomial_size, input_modulus, output_modulus, functions.size(), [&](size_t j, uint64_t m) {
        return encode_message(functions[j](m) & (output_modulus - 1), output_modulus);
    });
}

LookupTable generate_many_lookup_table(const TfheParameters & params, uint64_t input_modulus,
                                       uint64_t output_modulus, std::span<const MessageFunction> functions) {
    FHEGPT_CHECK(functions.size() <= max_many_lut_function_count(params, input_modulus),
                 "%zu functions of inputs modulo %llu exceed the %zu that %s allows", functions.size(),
                 (unsigned long long)input_modulus, max_many_lut_function_count(params, input_modulus),
                 params.name.c_str());
    return generate_many_lookup_table(params.polynomial_size, input_modulus, output_modulus, functions);
}

size_t max_many_lut_function_count(const TfheParameters & params, uint64_t input_modulus) {
    FHEGPT_CHECK(std::has_single_bit(input_modulus) && input_modulus >= 2, "input modulus %llu",
                 (unsigned long long)input_modulus);
    return input_modulus >= params.message_modulus() ? 1 : params.message_modulus() / input_modulus;
}

} // namespace fhegpt::tfhe
