// Writing safetensors files from f32 values (F32, F16 or BF16 on disk).
#include "model/safetensors.h"

#include "common/error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

namespace fhegpt::model {

namespace {

using OrderedJson = nlohmann::ordered_json;

// Closes the file on every path out of write_safetensors().
struct FileCloser {
    void operator()(std::FILE * f) const { std::fclose(f); }
};

void write_bytes(std::FILE * f, const void * data, size_t size, const std::string & path) {
    if (size != 0 && std::fwrite(data, 1, size, f) != size) fail("{}: write failed: {}", path, std::strerror(errno));
}

uint64_t checked_numel(const SafetensorsTensorToWrite & tensor, const std::string & path) {
    uint64_t numel = 1;
    for (int64_t extent : tensor.shape) {
        if (extent < 0) fail("{}: tensor '{}': negative shape entry {}", path, tensor.name, extent);
        if (__builtin_mul_overflow(numel, static_cast<uint64_t>(extent), &numel)) {
            fail("{}: tensor '{}': element count overflows", path, tensor.name);
        }
    }
    return numel;
}

} // namespace

void write_safetensors(const std::string & path, std::span<const SafetensorsTensorToWrite> tensors,
                       const std::map<std::string, std::string> & metadata) {
    std::set<std::string_view> names;
    for (const SafetensorsTensorToWrite & tensor : tensors) {
        if (tensor.dtype != SafetensorsDtype::F32 && tensor.dtype != SafetensorsDtype::F16 &&
            tensor.dtype != SafetensorsDtype::BF16) {
            fail("{}: tensor '{}': cannot write dtype {} (F32, F16 or BF16 only)", path, tensor.name,
                 safetensors_dtype_name(tensor.dtype));
        }
        if (tensor.name == "__metadata__") fail("{}: '__metadata__' is reserved, not a tensor name", path);
        if (!names.insert(tensor.name).second) fail("{}: duplicate tensor name '{}'", path, tensor.name);
        uint64_t numel = checked_numel(tensor, path);
        if (numel != tensor.values.size()) {
            fail("{}: tensor '{}': shape has {} elements, {} values given", path, tensor.name, numel,
                 tensor.values.size());
        }
    }

    // Widest elements first, as Hugging Face does: with no gaps between tensors, every tensor
    // then starts at a multiple of its element size.
    std::vector<const SafetensorsTensorToWrite *> order;
    for (const SafetensorsTensorToWrite & tensor : tensors) order.push_back(&tensor);
    std::stable_sort(order.begin(), order.end(),
                     [](const SafetensorsTensorToWrite * a, const SafetensorsTensorToWrite * b) {
                         return safetensors_dtype_size(a->dtype) > safetensors_dtype_size(b->dtype);
                     });

    std::string header_text;
    try {
        OrderedJson header = OrderedJson::object();
        if (!metadata.empty()) header["__metadata__"] = metadata;
        uint64_t offset = 0;
        for (const SafetensorsTensorToWrite * tensor : order) {
            uint64_t bytes = tensor->values.size() * safetensors_dtype_size(tensor->dtype);
            header[tensor->name] = {{"dtype", safetensors_dtype_name(tensor->dtype)},
                                    {"shape", tensor->shape},
                                    {"data_offsets", {offset, offset + bytes}}};
            offset += bytes;
        }
        header_text = header.dump();
    } catch (const nlohmann::json::exception & e) {
        fail("{}: cannot encode the header (names and metadata must be UTF-8): {}", path, e.what());
    }
    header_text.append((8 - (8 + header_text.size()) % 8) % 8, ' ');

    std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "wb"));
    if (!file) fail("{}: cannot create: {}", path, std::strerror(errno));
    uint8_t length[8];
    for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(static_cast<uint64_t>(header_text.size()) >> (8 * i));
    write_bytes(file.get(), length, sizeof(length), path);
    write_bytes(file.get(), header_text.data(), header_text.size(), path);

    std::vector<uint8_t> converted;
    for (const SafetensorsTensorToWrite * tensor : order) {
        if (tensor->dtype == SafetensorsDtype::F32) { // little-endian host: the bytes are the file's
            write_bytes(file.get(), tensor->values.data(), tensor->values.size_bytes(), path);
            continue;
        }
        bool is_f16 = tensor->dtype == SafetensorsDtype::F16;
        converted.resize(2 * tensor->values.size());
        for (size_t i = 0; i < tensor->values.size(); ++i) {
            uint16_t bits = is_f16 ? f32_to_f16(tensor->values[i]) : f32_to_bf16(tensor->values[i]);
            converted[2 * i] = static_cast<uint8_t>(bits);
            converted[2 * i + 1] = static_cast<uint8_t>(bits >> 8);
        }
        write_bytes(file.get(), converted.data(), converted.size(), path);
    }
    if (std::fclose(file.release()) != 0) fail("{}: write failed: {}", path, std::strerror(errno));
}

} // namespace fhegpt::model
