// The safetensors format (Hugging Face): a file is
//   [8 bytes: N, little-endian u64] [N bytes: JSON header] [data buffer]
// and the header is an object {name: {"dtype": "F32", "shape": [2, 3],
// "data_offsets": [begin, end]}, ..., "__metadata__": {string: string}}, with offsets in bytes
// relative to the start of the data buffer. Tensors are stored row-major, little-endian.
//
// parse_safetensors() validates a whole file held in memory (a byte span, so a fuzzer can
// drive it) and returns views into it; open_safetensors() memory-maps a file and parses it.
// Every problem is thrown as fhegpt::Error naming the source (the path) and what is wrong.
// write_safetensors() writes F32, F16 and BF16 tensors from f32 values.
#pragma once

#include "common/mapped_file.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fhegpt::model {

// Every dtype the format defines (so that files holding, say, an I64 buffer still parse);
// only F32, F16 and BF16 convert to f32.
enum class SafetensorsDtype { BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };

std::string_view safetensors_dtype_name(SafetensorsDtype dtype);
size_t safetensors_dtype_size(SafetensorsDtype dtype); // bytes per element
// nullopt for a name the format does not define.
std::optional<SafetensorsDtype> parse_safetensors_dtype(std::string_view name);

struct SafetensorsTensor {
    std::string name;
    SafetensorsDtype dtype = SafetensorsDtype::F32;
    std::vector<int64_t> shape; // empty for a scalar
    uint64_t numel = 0;         // product of shape (1 for a scalar)
    uint64_t data_begin = 0;    // data_offsets, relative to the data buffer
    uint64_t data_end = 0;
    std::span<const uint8_t> data; // the tensor's bytes, inside the parsed span
};

// A parsed file: views into the bytes given to parse_safetensors(), which must outlive it.
struct Safetensors {
    std::string source; // the path, for messages
    std::map<std::string, SafetensorsTensor, std::less<>> tensors;
    std::map<std::string, std::string> metadata; // "__metadata__"

    // nullptr if there is no tensor of that name.
    const SafetensorsTensor * find(std::string_view name) const;
};

// Limits on hostile input (Hugging Face's own reader caps the header at 100 MB).
inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100u << 20;
inline constexpr size_t kSafetensorsMaxRank = 32;
inline constexpr size_t kSafetensorsMaxJsonDepth = 32;

// Validates and parses a whole safetensors file held in `bytes`; `source` names it in
// messages. Throws fhegpt::Error on: fewer than 8 bytes; header length past the end or over
// kSafetensorsMaxHeaderBytes; bad JSON, duplicate keys, wrong field types; unknown dtype;
// negative shape entries or an element count that overflows; data_offsets reversed, past the
// data buffer, not matching numel * dtype size, or overlapping another tensor; bad metadata.
Safetensors parse_safetensors(std::span<const uint8_t> bytes, const std::string & source);

// A memory-mapped safetensors file. `contents` views the mapping; the mapping is a heap
// object, so it can be moved into a model (Gpt2Model::weights_file) and the views stay valid.
struct SafetensorsFile {
    std::unique_ptr<MappedFile> mapping;
    Safetensors contents;
};

// Maps and parses `path`. Throws fhegpt::Error naming the path.
SafetensorsFile open_safetensors(const std::string & path);

// The tensor's values as f32, with no copy: a view of its bytes when it is F32 and they are
// 4-byte aligned; nullopt otherwise.
std::optional<std::span<const float>> tensor_f32_view(const SafetensorsTensor & tensor);

// The tensor's values converted to f32 (F32 copied, F16 and BF16 widened exactly).
// Throws fhegpt::Error naming `source`, the tensor and its dtype when it is another dtype.
std::vector<float> tensor_to_f32(const SafetensorsTensor & tensor, const std::string & source);

// tensor_f32_view() when possible, else tensor_to_f32() into `storage` and a view of it.
std::span<const float> tensor_as_f32(const SafetensorsTensor & tensor, const std::string & source,
                                     std::vector<float> & storage);

// IEEE binary16 and bfloat16 conversions. Widening is exact (subnormals, infinities, NaN
// payloads kept); narrowing rounds to nearest even, overflows to infinity, keeps NaN a NaN.
float f16_to_f32(uint16_t bits);
float bf16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float value);
uint16_t f32_to_bf16(float value);

struct SafetensorsTensorToWrite {
    std::string name;
    SafetensorsDtype dtype = SafetensorsDtype::F32; // F32, F16 or BF16
    std::vector<int64_t> shape;
    std::span<const float> values; // numel values, converted to dtype on write
};

// Writes a safetensors file: tensors laid out in the order given, the header padded with
// spaces to a multiple of 8 bytes (as Hugging Face does, so that F32 data is aligned).
// Throws fhegpt::Error naming the path on bad input (dtype other than F32/F16/BF16, value
// count not matching the shape, duplicate or reserved names) and on I/O errors.
void write_safetensors(const std::string & path, std::span<const SafetensorsTensorToWrite> tensors,
                       const std::map<std::string, std::string> & metadata = {});

} // namespace fhegpt::model
