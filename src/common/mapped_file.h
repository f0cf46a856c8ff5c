// A read-only memory mapping of a whole file. Model weights are mapped, not read, so that
// loading a checkpoint costs no copy and pages are shared between processes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace fhegpt {

class MappedFile {
public:
    // Throws fhegpt::Error naming the path if the file cannot be opened or mapped.
    explicit MappedFile(const std::string & path);
    ~MappedFile();
    MappedFile(const MappedFile &) = delete;
    MappedFile & operator=(const MappedFile &) = delete;
    MappedFile(MappedFile && other) noexcept;
    MappedFile & operator=(MappedFile && other) noexcept;

    std::span<const uint8_t> bytes() const { return {data_, size_}; }
    size_t size() const { return size_; }
    const std::string & path() const { return path_; }

private:
    std::string path_;
    const uint8_t * data_ = nullptr;
    size_t size_ = 0;
};

} // namespace fhegpt
