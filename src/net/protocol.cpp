#include "net/protocol.h"

#include "circuit/quantized_blocks.h"
#include "common/error.h"
#include "quant/quantizer.h"
#include "tfhe/serialization/binary_io.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

namespace fhegpt::net {

namespace {

constexpr uint8_t kMagic[4] = {'F', 'G', 'M', 'S'};
constexpr std::string_view kSource = "<network message>";
// Sanity bounds on what a manifest may claim (hostile servers).
constexpr int32_t kMaxEmbedding = 1 << 16;
constexpr int32_t kMaxPositions = 1 << 20;

void write_header(tfhe::BinaryWriter & w, MessageType type) {
    w.write_bytes(kMagic);
    w.write_u16(uint16_t(kProtocolVersion));
    w.write_u16(uint16_t(type));
}

void read_header(tfhe::BinaryReader & r, MessageType expected, const char * name) {
    const auto magic = r.read_bytes(4, "message magic");
    if (!std::equal(magic.begin(), magic.end(), kMagic)) fail("{}: not an fhegpt protocol message (bad magic)", name);
    const uint16_t version = r.read_u16("protocol version");
    if (version != kProtocolVersion)
        fail("{}: protocol version {}, this program speaks version {}", name, version, kProtocolVersion);
    const uint16_t type = r.read_u16("message type");
    if (type != uint16_t(expected)) fail("{}: message type {}, expected {}", name, type, uint16_t(expected));
}

void write_blob(tfhe::BinaryWriter & w, std::span<const uint8_t> blob) {
    w.write_u64(blob.size());
    w.write_bytes(blob);
}

std::vector<uint8_t> read_blob(tfhe::BinaryReader & r, const char * what) {
    const uint64_t size = r.read_u64(what);
    r.require_remaining(size, what); // before allocating: a hostile length is an error, not a huge vector
    const auto bytes = r.read_bytes(size_t(size), what);
    return {bytes.begin(), bytes.end()};
}

std::string to_string(std::vector<uint8_t> bytes) { return {bytes.begin(), bytes.end()}; }

template <typename T>
T field(const nlohmann::json & j, const char * name) {
    if (!j.contains(name)) fail("server manifest: no field '{}'", name);
    if constexpr (std::is_integral_v<T>) {
        // nlohmann would cast floats (undefined when out of range) and wrap big or negative values.
        const nlohmann::json & v = j.at(name);
        if (!v.is_number_integer()) fail("server manifest: field '{}' has the wrong type", name);
        const bool fits = v.is_number_unsigned()
                              ? v.get<uint64_t>() <= uint64_t(std::numeric_limits<T>::max())
                              : std::in_range<T>(v.get<int64_t>());
        if (!fits) fail("server manifest: field '{}' is out of range", name);
        return v.get<T>();
    }
    try {
        return j.at(name).get<T>();
    } catch (const nlohmann::json::exception &) {
        fail("server manifest: field '{}' has the wrong type", name);
    }
}

} // namespace

std::string PartManifest::to_json() const {
    nlohmann::json j = {
        {"protocol", protocol},
        {"part", part},
        {"n_bits", n_bits},
        {"parameter_set", parameter_set},
        {"n_embd", n_embd},
        {"output_cols", output_cols},
        {"x_bits", x_bits},
        {"x_scales", x_scales},
        {"input_delta_log2", input_delta_log2},
        {"output_delta_log2", output_delta_log2},
        {"output_unit", output_unit},
        {"max_positions", max_positions},
        {"max_request_bytes", max_request_bytes},
        {"max_sessions", max_sessions},
        {"idle_timeout_seconds", idle_timeout_seconds},
        {"server_key_bytes", server_key_bytes},
    };
    if (stream)
        j["stream"] = {{"width", stream->width},
                       {"units", stream->units},
                       {"eps", stream->eps},
                       {"stream_delta_log2", stream->stream_delta_log2},
                       {"output_units", stream->output_units}};
    return j.dump();
}

PartManifest PartManifest::from_json(std::string_view text) {
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) fail("server manifest: not a JSON object");
    PartManifest m;
    m.protocol = field<int>(j, "protocol");
    if (m.protocol != kProtocolVersion)
        fail("the server speaks protocol version {}, this client version {}", m.protocol, kProtocolVersion);
    m.part = field<std::string>(j, "part");
    m.n_bits = field<int>(j, "n_bits");
    m.parameter_set = field<std::string>(j, "parameter_set");
    m.n_embd = field<int32_t>(j, "n_embd");
    m.output_cols = field<int32_t>(j, "output_cols");
    m.x_bits = field<int>(j, "x_bits");
    m.x_scales = field<std::vector<double>>(j, "x_scales");
    m.input_delta_log2 = field<int>(j, "input_delta_log2");
    m.output_delta_log2 = field<int>(j, "output_delta_log2");
    m.output_unit = field<double>(j, "output_unit");
    m.max_positions = field<int32_t>(j, "max_positions");
    m.max_request_bytes = field<uint64_t>(j, "max_request_bytes");
    m.max_sessions = field<int32_t>(j, "max_sessions");
    m.idle_timeout_seconds = field<double>(j, "idle_timeout_seconds");
    m.server_key_bytes = field<uint64_t>(j, "server_key_bytes");

    if (m.n_embd <= 0 || m.n_embd > kMaxEmbedding) fail("server manifest: n_embd {} out of range", m.n_embd);
    if (m.output_cols <= 0 || m.output_cols > kMaxEmbedding) fail("server manifest: output_cols {} out of range", m.output_cols);
    if (m.x_bits < 2 || m.x_bits > 16) fail("server manifest: x_bits {} out of range", m.x_bits);
    if (m.x_scales.size() != size_t(m.n_embd))
        fail("server manifest: {} input scales for {} inputs", m.x_scales.size(), m.n_embd);
    for (double s : m.x_scales)
        if (!std::isfinite(s) || s <= 0) fail("server manifest: an input scale is {}", s);
    if (m.input_delta_log2 < 1 || m.input_delta_log2 > 63 || m.output_delta_log2 < 1 || m.output_delta_log2 > 63)
        fail("server manifest: encodings 2^{} / 2^{} out of range", m.input_delta_log2, m.output_delta_log2);
    if (!std::isfinite(m.output_unit) || m.output_unit <= 0) fail("server manifest: output unit {}", m.output_unit);
    if (m.max_positions <= 0 || m.max_positions > kMaxPositions)
        fail("server manifest: max_positions {} out of range", m.max_positions);
    if (j.contains("stream")) {
        const nlohmann::json & js = j.at("stream");
        if (!js.is_object()) fail("server manifest: field 'stream' has the wrong type");
        StreamManifest st;
        st.width = field<int>(js, "width");
        st.units = field<std::vector<double>>(js, "units");
        st.eps = field<double>(js, "eps");
        st.stream_delta_log2 = field<int>(js, "stream_delta_log2");
        st.output_units = field<std::vector<double>>(js, "output_units");
        if (st.width < 2 || st.width > 62) fail("server manifest: stream width {} out of range", st.width);
        if (st.units.size() != size_t(m.n_embd) || st.output_units.size() != size_t(m.n_embd))
            fail("server manifest: {} stream units and {} output units for {} channels", st.units.size(),
                 st.output_units.size(), m.n_embd);
        for (const auto * units : {&st.units, &st.output_units})
            for (double u : *units)
                if (!std::isfinite(u) || u <= 0) fail("server manifest: a stream unit is {}", u);
        if (!std::isfinite(st.eps) || st.eps <= 0 || st.eps > 1) fail("server manifest: eps {} out of range", st.eps);
        if (st.stream_delta_log2 < 1 || st.stream_delta_log2 > 63)
            fail("server manifest: stream encoding 2^{} out of range", st.stream_delta_log2);
        if (m.output_cols != m.n_embd) fail("server manifest: blocks with {} outputs of {} channels", m.output_cols, m.n_embd);
        m.stream = std::move(st);
    }
    m.parameters(); // a known set
    return m;
}

const tfhe::TfheParameters & PartManifest::parameters() const { return tfhe::parameters_by_name(parameter_set); }

int PartManifest::input_delta_log2_of(int32_t c) const {
    return stream && c < n_embd ? stream->stream_delta_log2 : input_delta_log2;
}

double PartManifest::output_unit_of(int32_t c) const {
    return stream ? stream->output_units.at(size_t(c % n_embd)) : output_unit;
}

std::vector<int64_t> PartManifest::quantize_inputs(std::span<const float> x) const {
    if (x.size() % size_t(n_embd) != 0) fail("quantize_inputs: {} values, rows of {}", x.size(), n_embd);
    if (stream) {
        circuit::ResidualEncoding residual;
        residual.width = stream->width;
        residual.unit = stream->units;
        return circuit::quantize_block_inputs(residual, float(stream->eps), x_scales, x_bits, x);
    }
    std::vector<int64_t> out(x.size());
    for (size_t i = 0; i < x.size(); ++i) out[i] = quant::quantize_value(x[i], x_scales[i % size_t(n_embd)], x_bits);
    return out;
}

std::string encode(const KeyUpload & m) {
    tfhe::BinaryWriter w(m.server_key.size() + 16);
    write_header(w, MessageType::KeyUpload);
    write_blob(w, m.server_key);
    return to_string(w.take());
}

std::string encode(const EvalRequest & m) {
    tfhe::BinaryWriter w(m.inputs.size() + 24);
    write_header(w, MessageType::EvalRequest);
    w.write_u32(m.n_past);
    w.write_u32(m.n_new);
    write_blob(w, m.inputs);
    return to_string(w.take());
}

std::string encode(const EvalResponse & m) {
    tfhe::BinaryWriter w(m.outputs.size() + 40);
    write_header(w, MessageType::EvalResponse);
    w.write_u32(m.first);
    w.write_u32(m.n_new);
    w.write_u64(m.bootstraps);
    uint64_t seconds_bits = 0;
    static_assert(sizeof(double) == sizeof(uint64_t));
    std::memcpy(&seconds_bits, &m.seconds, sizeof seconds_bits);
    w.write_u64(seconds_bits);
    write_blob(w, m.outputs);
    return to_string(w.take());
}

KeyUpload decode_key_upload(std::span<const uint8_t> bytes) {
    tfhe::BinaryReader r(bytes, kSource);
    read_header(r, MessageType::KeyUpload, "key upload");
    KeyUpload m;
    m.server_key = read_blob(r, "server key");
    r.expect_end("key upload");
    return m;
}

EvalRequest decode_eval_request(std::span<const uint8_t> bytes) {
    tfhe::BinaryReader r(bytes, kSource);
    read_header(r, MessageType::EvalRequest, "eval request");
    EvalRequest m;
    m.n_past = r.read_u32("n_past");
    m.n_new = r.read_u32("n_new");
    m.inputs = read_blob(r, "input ciphertexts");
    r.expect_end("eval request");
    return m;
}

EvalResponse decode_eval_response(std::span<const uint8_t> bytes) {
    tfhe::BinaryReader r(bytes, kSource);
    read_header(r, MessageType::EvalResponse, "eval response");
    EvalResponse m;
    m.first = r.read_u32("first");
    m.n_new = r.read_u32("n_new");
    m.bootstraps = r.read_u64("bootstraps");
    const uint64_t seconds_bits = r.read_u64("seconds");
    std::memcpy(&m.seconds, &seconds_bits, sizeof seconds_bits);
    m.outputs = read_blob(r, "output ciphertexts");
    r.expect_end("eval response");
    return m;
}

std::string format_bytes(uint64_t bytes) {
    if (bytes < 10 * 1024) return fmt::format("{} B", bytes);
    if (bytes < 10 * 1024 * 1024) return fmt::format("{:.1f} KiB", double(bytes) / 1024);
    return fmt::format("{:.1f} MiB", double(bytes) / (1024 * 1024));
}

std::string bearer_token(std::string_view authorization) {
    constexpr std::string_view prefix = "Bearer ";
    if (authorization.substr(0, prefix.size()) != prefix) return {};
    return std::string(authorization.substr(prefix.size()));
}

} // namespace fhegpt::net
