// Reading safetensors: header validation, tensor views, f32 conversion.
#include "model/safetensors.h"

#include "common/check.h"
#include "common/error.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <set>

namespace fhegpt::model {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; the zero-copy views assume a little-endian host");

namespace {

using nlohmann::json;

struct DtypeInfo {
    SafetensorsDtype dtype;
    std::string_view name;
    size_t size;
};

constexpr std::array<DtypeInfo, 15> kDtypes = {{
    {SafetensorsDtype::BOOL, "BOOL", 1},
    {SafetensorsDtype::U8, "U8", 1},
    {SafetensorsDtype::I8, "I8", 1},
    {SafetensorsDtype::F8_E5M2, "F8_E5M2", 1},
    {SafetensorsDtype::F8_E4M3, "F8_E4M3", 1},
    {SafetensorsDtype::I16, "I16", 2},
    {SafetensorsDtype::U16, "U16", 2},
    {SafetensorsDtype::F16, "F16", 2},
    {SafetensorsDtype::BF16, "BF16", 2},
    {SafetensorsDtype::I32, "I32", 4},
    {SafetensorsDtype::U32, "U32", 4},
    {SafetensorsDtype::F32, "F32", 4},
    {SafetensorsDtype::F64, "F64", 8},
    {SafetensorsDtype::I64, "I64", 8},
    {SafetensorsDtype::U64, "U64", 8},
}};

constexpr bool dtypes_in_enum_order() {
    for (size_t i = 0; i < kDtypes.size(); ++i) {
        if (static_cast<size_t>(kDtypes[i].dtype) != i) return false;
    }
    return true;
}
static_assert(dtypes_in_enum_order(), "kDtypes must list SafetensorsDtype in declaration order");

const DtypeInfo & dtype_info(SafetensorsDtype dtype) {
    size_t index = static_cast<size_t>(dtype);
    FHEGPT_CHECK(index < kDtypes.size(), "invalid SafetensorsDtype %zu", index);
    return kDtypes[index];
}

uint64_t read_u64_le(const uint8_t * p) {
    uint64_t value = 0;
    for (int i = 7; i >= 0; --i) value = (value << 8) | p[i];
    return value;
}

std::string shape_string(const std::vector<int64_t> & shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

// Parses the header JSON, rejecting duplicate keys at any level (nlohmann would keep the last
// one silently, so two tensors of the same name would go unnoticed) and deep nesting.
json parse_header_json(std::string_view text, const std::string & source) {
    std::vector<std::set<std::string>> open_objects; // keys seen so far, one set per open container
    auto on_event = [&](int /*depth*/, json::parse_event_t event, json & parsed) {
        switch (event) {
        case json::parse_event_t::object_start:
        case json::parse_event_t::array_start:
            if (open_objects.size() >= kSafetensorsMaxJsonDepth) {
                fail("{}: header JSON nested deeper than {} levels", source, kSafetensorsMaxJsonDepth);
            }
            open_objects.emplace_back();
            break;
        case json::parse_event_t::object_end:
        case json::parse_event_t::array_end:
            if (!open_objects.empty()) open_objects.pop_back();
            break;
        case json::parse_event_t::key: {
            const std::string & key = parsed.get_ref<const std::string &>();
            if (!open_objects.empty() && !open_objects.back().insert(key).second) {
                if (open_objects.size() == 1) fail("{}: duplicate tensor name '{}' in header", source, key);
                fail("{}: duplicate key '{}' in header", source, key);
            }
            break;
        }
        case json::parse_event_t::value:
            break;
        }
        return true;
    };
    try {
        return json::parse(text.begin(), text.end(), on_event);
    } catch (const json::exception & e) {
        // e.what() reads "[json.exception.parse_error.101] parse error at ...": keep the tail.
        std::string_view what = e.what();
        if (size_t close = what.find("] "); what.starts_with("[json.") && close != std::string_view::npos) {
            what.remove_prefix(close + 2);
        }
        fail("{}: bad JSON in header: {}", source, what);
    }
}

uint64_t get_offset(const json & value, const std::string & source, const std::string & name) {
    if (!value.is_number_unsigned()) {
        if (value.is_number_integer()) {
            fail("{}: tensor '{}': data_offsets entry {} is negative", source, name, value.get<int64_t>());
        }
        fail("{}: tensor '{}': data_offsets entries must be non-negative integers, got {}", source, name,
             value.type_name());
    }
    return value.get<uint64_t>();
}

SafetensorsTensor parse_tensor_entry(const std::string & name, const json & entry, std::span<const uint8_t> data,
                                     const std::string & source) {
    if (!entry.is_object()) fail("{}: tensor '{}': entry must be an object, got {}", source, name, entry.type_name());
    SafetensorsTensor tensor;
    tensor.name = name;

    auto dtype_it = entry.find("dtype");
    if (dtype_it == entry.end()) fail("{}: tensor '{}': missing \"dtype\"", source, name);
    if (!dtype_it->is_string()) {
        fail("{}: tensor '{}': \"dtype\" must be a string, got {}", source, name, dtype_it->type_name());
    }
    const std::string & dtype_name = dtype_it->get_ref<const std::string &>();
    std::optional<SafetensorsDtype> dtype = parse_safetensors_dtype(dtype_name);
    if (!dtype) fail("{}: tensor '{}': unknown dtype '{}'", source, name, dtype_name);
    tensor.dtype = *dtype;

    auto shape_it = entry.find("shape");
    if (shape_it == entry.end()) fail("{}: tensor '{}': missing \"shape\"", source, name);
    if (!shape_it->is_array()) {
        fail("{}: tensor '{}': \"shape\" must be an array, got {}", source, name, shape_it->type_name());
    }
    if (shape_it->size() > kSafetensorsMaxRank) {
        fail("{}: tensor '{}': shape has {} dimensions, more than {}", source, name, shape_it->size(),
             kSafetensorsMaxRank);
    }
    uint64_t numel = 1;
    for (const json & dim : *shape_it) {
        if (!dim.is_number_integer()) {
            fail("{}: tensor '{}': shape entries must be integers, got {}", source, name, dim.type_name());
        }
        if (!dim.is_number_unsigned()) {
            fail("{}: tensor '{}': shape entry {} is negative", source, name, dim.get<int64_t>());
        }
        uint64_t extent = dim.get<uint64_t>();
        if (extent > static_cast<uint64_t>(INT64_MAX)) {
            fail("{}: tensor '{}': shape entry {} is too large", source, name, extent);
        }
        tensor.shape.push_back(static_cast<int64_t>(extent));
        if (__builtin_mul_overflow(numel, extent, &numel)) {
            fail("{}: tensor '{}': element count of shape {} overflows 64 bits", source, name, shape_it->dump());
        }
    }
    tensor.numel = numel;

    auto offsets_it = entry.find("data_offsets");
    if (offsets_it == entry.end()) fail("{}: tensor '{}': missing \"data_offsets\"", source, name);
    if (!offsets_it->is_array() || offsets_it->size() != 2) {
        fail("{}: tensor '{}': \"data_offsets\" must be an array [begin, end]", source, name);
    }
    uint64_t begin = get_offset((*offsets_it)[0], source, name);
    uint64_t end = get_offset((*offsets_it)[1], source, name);
    if (end < begin) {
        fail("{}: tensor '{}': data_offsets [{}, {}] are reversed (end before begin)", source, name, begin, end);
    }
    if (end > data.size()) {
        fail("{}: tensor '{}': data_offsets [{}, {}] out of range: the data buffer holds {} bytes (file truncated?)",
             source, name, begin, end, data.size());
    }
    uint64_t expected_bytes = 0;
    size_t element_size = safetensors_dtype_size(tensor.dtype);
    if (__builtin_mul_overflow(numel, element_size, &expected_bytes) || end - begin != expected_bytes) {
        fail("{}: tensor '{}': data_offsets [{}, {}] hold {} bytes, but dtype {} and shape {} need {} x {} bytes",
             source, name, begin, end, end - begin, dtype_name, shape_string(tensor.shape), numel, element_size);
    }
    tensor.data_begin = begin;
    tensor.data_end = end;
    tensor.data = data.subspan(begin, end - begin);
    return tensor;
}

void parse_metadata(const json & value, Safetensors & result) {
    if (value.is_null()) return;
    if (!value.is_object()) fail("{}: \"__metadata__\" must be an object, got {}", result.source, value.type_name());
    for (const auto & [key, item] : value.items()) {
        if (!item.is_string()) {
            fail("{}: \"__metadata__\" value of '{}' must be a string, got {}", result.source, key, item.type_name());
        }
        result.metadata.emplace(key, item.get<std::string>());
    }
}

void check_no_overlap(const Safetensors & result) {
    std::vector<const SafetensorsTensor *> by_offset;
    for (const auto & [name, tensor] : result.tensors) {
        if (tensor.data_end > tensor.data_begin) by_offset.push_back(&tensor);
    }
    std::sort(by_offset.begin(), by_offset.end(),
              [](const SafetensorsTensor * a, const SafetensorsTensor * b) { return a->data_begin < b->data_begin; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
        const SafetensorsTensor & prev = *by_offset[i - 1];
        const SafetensorsTensor & next = *by_offset[i];
        if (next.data_begin < prev.data_end) {
            fail("{}: tensors '{}' [{}, {}] and '{}' [{}, {}] overlap", result.source, prev.name, prev.data_begin,
                 prev.data_end, next.name, next.data_begin, next.data_end);
        }
    }
}

} // namespace

std::string_view safetensors_dtype_name(SafetensorsDtype dtype) { return dtype_info(dtype).name; }

size_t safetensors_dtype_size(SafetensorsDtype dtype) { return dtype_info(dtype).size; }

std::optional<SafetensorsDtype> parse_safetensors_dtype(std::string_view name) {
    for (const DtypeInfo & info : kDtypes) {
        if (info.name == name) return info.dtype;
    }
    return std::nullopt;
}

const SafetensorsTensor * Safetensors::find(std::string_view name) const {
    auto it = tensors.find(name);
    return it == tensors.end() ? nullptr : &it->second;
}

Safetensors parse_safetensors(std::span<const uint8_t> bytes, const std::string & source) {
    Safetensors result;
    result.source = source;
    if (bytes.size() < 8) {
        fail("{}: file is {} bytes, shorter than the 8-byte header length of a safetensors file", source, bytes.size());
    }
    uint64_t header_bytes = read_u64_le(bytes.data());
    if (header_bytes > kSafetensorsMaxHeaderBytes) {
        fail("{}: header length {} exceeds the limit of {} bytes (not a safetensors file?)", source, header_bytes,
             kSafetensorsMaxHeaderBytes);
    }
    if (header_bytes > bytes.size() - 8) {
        fail("{}: header length {} past end of file ({} bytes after the length field)", source, header_bytes,
             bytes.size() - 8);
    }
    std::string_view header_text(reinterpret_cast<const char *>(bytes.data() + 8), header_bytes);
    std::span<const uint8_t> data = bytes.subspan(8 + header_bytes);

    json header = parse_header_json(header_text, source);
    if (!header.is_object()) fail("{}: header is not a JSON object but {}", source, header.type_name());
    for (const auto & [name, entry] : header.items()) {
        if (name == "__metadata__") {
            parse_metadata(entry, result);
            continue;
        }
        result.tensors.emplace(name, parse_tensor_entry(name, entry, data, source));
    }
    check_no_overlap(result);
    return result;
}

SafetensorsFile open_safetensors(const std::string & path) {
    SafetensorsFile file;
    file.mapping = std::make_unique<MappedFile>(path);
    file.contents = parse_safetensors(file.mapping->bytes(), path);
    return file;
}

std::optional<std::span<const float>> tensor_f32_view(const SafetensorsTensor & tensor) {
    if (tensor.dtype != SafetensorsDtype::F32) return std::nullopt;
    if (reinterpret_cast<uintptr_t>(tensor.data.data()) % alignof(float) != 0) return std::nullopt;
    return std::span<const float>(reinterpret_cast<const float *>(tensor.data.data()), tensor.numel);
}

std::vector<float> tensor_to_f32(const SafetensorsTensor & tensor, const std::string & source) {
    const uint8_t * p = tensor.data.data();
    switch (tensor.dtype) {
    case SafetensorsDtype::F32: {
        std::vector<float> values(tensor.numel);
        if (!values.empty()) std::memcpy(values.data(), p, tensor.data.size());
        return values;
    }
    case SafetensorsDtype::F16:
    case SafetensorsDtype::BF16: {
        bool is_f16 = tensor.dtype == SafetensorsDtype::F16;
        std::vector<float> values(tensor.numel);
        for (size_t i = 0; i < values.size(); ++i) {
            uint16_t bits = static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8));
            values[i] = is_f16 ? f16_to_f32(bits) : bf16_to_f32(bits);
        }
        return values;
    }
    default:
        fail("{}: tensor '{}' has dtype {}, unsupported (supported: F32, F16, BF16)", source, tensor.name,
             safetensors_dtype_name(tensor.dtype));
    }
}

std::span<const float> tensor_as_f32(const SafetensorsTensor & tensor, const std::string & source,
                                     std::vector<float> & storage) {
    if (std::optional<std::span<const float>> view = tensor_f32_view(tensor)) return *view;
    storage = tensor_to_f32(tensor, source);
    return storage;
}

float f16_to_f32(uint16_t bits) {
    uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
    uint32_t exponent = (bits >> 10) & 0x1fu;
    uint32_t mantissa = bits & 0x3ffu;
    if (exponent == 0) {
        // Zero or subnormal: mantissa * 2^-24, exact in f32 (which has the range to normalize it).
        float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
        return std::bit_cast<float>(sign | std::bit_cast<uint32_t>(magnitude));
    }
    if (exponent == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13)); // inf, NaN
    return std::bit_cast<float>(sign | ((exponent + 127 - 15) << 23) | (mantissa << 13));
}

float bf16_to_f32(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

uint16_t f32_to_f16(float value) {
    uint32_t x = std::bit_cast<uint32_t>(value);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t magnitude = x & 0x7fffffffu;
    if (magnitude > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu)); // NaN
    if (magnitude >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u); // >= 65520 rounds to infinity
    uint32_t exponent = magnitude >> 23;
    uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
    uint32_t shift = 0;
    uint32_t half_bits = 0;
    if (exponent >= 113) { // normal in f16: keep 10 of the 23 mantissa bits
        half_bits = ((exponent - 112) << 10) | ((magnitude & 0x7fffffu) >> 13);
        shift = 13;
    } else { // subnormal in f16: value / 2^-24 = significand * 2^(exponent - 126)
        if (exponent < 102) return static_cast<uint16_t>(sign); // below 2^-25: rounds to zero
        shift = 126 - exponent;
        half_bits = significand >> shift;
    }
    uint32_t remainder = (shift == 13 ? magnitude : significand) & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (remainder > halfway || (remainder == halfway && (half_bits & 1u))) ++half_bits; // may carry into exponent
    return static_cast<uint16_t>(sign | half_bits);
}

uint16_t f32_to_bf16(float value) {
    uint32_t x = std::bit_cast<uint32_t>(value);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x0040u); // NaN stays NaN
    x += 0x7fffu + ((x >> 16) & 1u); // round to nearest even; overflows into infinity
    return static_cast<uint16_t>(x >> 16);
}

} // namespace fhegpt::model
