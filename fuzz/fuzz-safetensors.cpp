// libFuzzer target: parse_safetensors on arbitrary bytes, then every tensor to f32.
// Only fhegpt::Error may leave the parser; any other exception, a crash or a sanitizer report
// is a bug. On success, checks the invariants the parser promises.
#include "common/error.h"
#include "model/safetensors.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace {

void require(bool condition) {
    if (!condition) __builtin_trap();
}

void check_tensor(const fhegpt::model::SafetensorsTensor & tensor, std::span<const uint8_t> input,
                  const std::string & source) {
    using fhegpt::model::SafetensorsDtype;
    // The tensor's bytes lie inside the input and match numel * dtype size.
    require(tensor.data.data() >= input.data() &&
            tensor.data.data() + tensor.data.size() <= input.data() + input.size());
    require(tensor.data.size() == tensor.numel * fhegpt::model::safetensors_dtype_size(tensor.dtype));
    require(tensor.data_end - tensor.data_begin == tensor.data.size());
    if (tensor.dtype != SafetensorsDtype::F32 && tensor.dtype != SafetensorsDtype::F16 &&
        tensor.dtype != SafetensorsDtype::BF16) {
        try {
            fhegpt::model::tensor_to_f32(tensor, source);
            require(false); // other dtypes must be refused
        } catch (const fhegpt::Error &) {
        }
        return;
    }
    std::vector<float> values = fhegpt::model::tensor_to_f32(tensor, source);
    require(values.size() == tensor.numel);
    std::vector<float> storage;
    std::span<const float> view = fhegpt::model::tensor_as_f32(tensor, source, storage);
    require(view.size() == values.size());
    require(view.empty() || std::memcmp(view.data(), values.data(), view.size_bytes()) == 0);
    if (tensor.dtype == SafetensorsDtype::F32) return;
    // Narrowing what was widened gives back the stored bits (NaNs aside).
    for (size_t i = 0; i < values.size(); ++i) {
        uint16_t stored = static_cast<uint16_t>(tensor.data[2 * i] | (tensor.data[2 * i + 1] << 8));
        if (std::isnan(values[i])) continue;
        uint16_t narrowed = tensor.dtype == SafetensorsDtype::F16 ? fhegpt::model::f32_to_f16(values[i])
                                                                  : fhegpt::model::f32_to_bf16(values[i]);
        require(narrowed == stored);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    const std::string source = "<fuzz>";
    std::span<const uint8_t> input(data, size);
    try {
        fhegpt::model::Safetensors parsed = fhegpt::model::parse_safetensors(input, source);
        for (const auto & [name, tensor] : parsed.tensors) {
            require(name == tensor.name);
            check_tensor(tensor, input, source);
        }
    } catch (const fhegpt::Error &) {
        // Rejected input: the expected outcome for most of it.
    }
    return 0;
}
