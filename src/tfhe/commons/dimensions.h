// Distinct types for the dimensions of TFHE objects, so that an LWE dimension n is never passed
// where an LWE size n + 1 (mask + body) or a polynomial size N is expected. Plain structs with
// one public `value`; conversions are explicit member functions.
#pragma once

#include <cstddef>

namespace fhegpt::tfhe {

struct LweSize;
struct GlweSize;

// n: number of mask elements of an LWE ciphertext (= length of the LWE secret key).
struct LweDimension {
    size_t value = 0;
    constexpr LweDimension() = default;
    constexpr explicit LweDimension(size_t v) : value(v) {}
    constexpr LweSize to_lwe_size() const;
    constexpr bool operator==(const LweDimension &) const = default;
};

// n + 1: number of torus elements of an LWE ciphertext (mask and body).
struct LweSize {
    size_t value = 0;
    constexpr LweSize() = default;
    constexpr explicit LweSize(size_t v) : value(v) {}
    constexpr LweDimension to_lwe_dimension() const { return LweDimension{value - 1}; }
    constexpr bool operator==(const LweSize &) const = default;
};

constexpr LweSize LweDimension::to_lwe_size() const { return LweSize{value + 1}; }

// k: number of mask polynomials of a GLWE ciphertext (= polynomials of the GLWE secret key).
struct GlweDimension {
    size_t value = 0;
    constexpr GlweDimension() = default;
    constexpr explicit GlweDimension(size_t v) : value(v) {}
    constexpr GlweSize to_glwe_size() const;
    constexpr bool operator==(const GlweDimension &) const = default;
};

// k + 1: number of polynomials of a GLWE ciphertext (mask and body).
struct GlweSize {
    size_t value = 0;
    constexpr GlweSize() = default;
    constexpr explicit GlweSize(size_t v) : value(v) {}
    constexpr GlweDimension to_glwe_dimension() const { return GlweDimension{value - 1}; }
    constexpr bool operator==(const GlweSize &) const = default;
};

constexpr GlweSize GlweDimension::to_glwe_size() const { return GlweSize{value + 1}; }

// N: number of coefficients of the polynomials of Z[X]/(X^N + 1), a power of two.
struct PolynomialSize {
    size_t value = 0;
    constexpr PolynomialSize() = default;
    constexpr explicit PolynomialSize(size_t v) : value(v) {}
    constexpr bool operator==(const PolynomialSize &) const = default;
};

// log2 of the decomposition base B (gadget decomposition of torus elements).
struct DecompositionBaseLog {
    size_t value = 0;
    constexpr DecompositionBaseLog() = default;
    constexpr explicit DecompositionBaseLog(size_t v) : value(v) {}
    constexpr bool operator==(const DecompositionBaseLog &) const = default;
};

// l: number of levels of a gadget decomposition.
struct DecompositionLevelCount {
    size_t value = 0;
    constexpr DecompositionLevelCount() = default;
    constexpr explicit DecompositionLevelCount(size_t v) : value(v) {}
    constexpr bool operator==(const DecompositionLevelCount &) const = default;
};

// g: how many mask elements of an LWE ciphertext a blind rotation consumes per external product.
// 1: the classic bootstrapping key, one GGSW of each key bit s_i, one CMux per mask element.
// 2..4: multi-bit (Joye-Paillier grouping, as TFHE-rs multi_bit sets): n / g groups of g key
// bits, 2^g GGSWs per group (entities/lwe_multi_bit_bootstrap_key.h), one external product per
// group.
struct LweBskGroupingFactor {
    size_t value = 1;
    constexpr LweBskGroupingFactor() = default;
    constexpr explicit LweBskGroupingFactor(size_t v) : value(v) {}
    constexpr bool is_multi_bit() const { return value > 1; }
    // GGSWs per group: 1 (classic) or 2^g.
    constexpr size_t ggsw_per_group() const { return value > 1 ? size_t{1} << value : 1; }
    // GGSWs of a key for n key bits (n a multiple of g): n or (n / g) 2^g.
    constexpr size_t ggsw_count(LweDimension n) const { return n.value / value * ggsw_per_group(); }
    constexpr bool operator==(const LweBskGroupingFactor &) const = default;
};

} // namespace fhegpt::tfhe
