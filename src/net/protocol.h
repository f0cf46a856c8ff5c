// The client/server protocol of a protected part (HTTP/1.1), version kProtocolVersion.
//
//   GET    /v1/info      JSON PartManifest: what a client needs to encrypt inputs and decode
//                        outputs (never the part's weights), and the server's limits.
//   POST   /v1/sessions  body: KeyUpload (the client's compressed server key) -> 201 JSON
//                        {"session": TOKEN, ...}. TOKEN: 32 random bytes, hex. An optional
//                        header "Fhegpt-Part: PART" names the part the client expects: another
//                        part is refused (409) before the body is read.
//   POST   /v1/eval      header "Authorization: Bearer TOKEN", body: EvalRequest -> EvalResponse
//   GET    /v1/progress  header "Authorization: Bearer TOKEN" -> JSON {"done": D, "total": T}:
//                        the bootstraps of the session's running evaluation (0 / 0 when idle);
//                        not logged, so that clients may poll it
//   DELETE /v1/session   header "Authorization: Bearer TOKEN" -> 204; cancels the session's
//                        running evaluation
//   GET    /v1/health    JSON ServerHealth (part_server.h): sessions and evaluations in use and
//                        their limits, for load balancers; not logged
// Errors: a status >= 400 and a JSON body {"error": "..."}. Bodies carry a Content-Length and
// no transfer or content coding.
//
// Binary bodies share one header, little-endian: magic "FGMS", u16 protocol version, u16
// message type. Ciphertexts and keys inside are blobs of tfhe/serialization (their own magic,
// version and parameter-set identity). An EvalRequest brings positions n_past..n_past+n_new-1
// as seeded ciphertexts (one shared seed: 8 bytes each); n_past is 0 to start a new sequence
// (the session's cache is dropped) or the session's position count; each position brings
// PartManifest::input_cols() ciphertexts. The EvalResponse holds
// the outputs of those rows under the big LWE key.
#pragma once

#include "tfhe/commons/parameters.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fhegpt::net {

inline constexpr int kProtocolVersion = 1;

// A run of whole blocks (layerL.mlp, layerL, layersA-B, all): what the client needs for its
// share of the first stage (circuit/quantized_blocks.h). Per position it encrypts the residual
// stream where the run starts (centred, x_k / unit_k rounded to `width` signed bits, at
// 2^stream_delta_log2) and that stream's normalization x / rms(x) (eps), quantized with the
// manifest's x_bits / x_scales at 2^input_delta_log2. Output column k is worth output_units[k].
struct StreamManifest {
    int width = 0;
    std::vector<double> units;        // [n_embd]
    double eps = 1e-5;
    int stream_delta_log2 = 0;
    std::vector<double> output_units; // [n_embd]
};

// Public description of a served part (GET /v1/info).
struct PartManifest {
    int protocol = kProtocolVersion;
    std::string part;            // "layer0.head0", "layer0.attn"
    int n_bits = 0;
    std::string parameter_set;   // the TFHE parameter set every session must use
    int32_t n_embd = 0;          // reals per position (the model's width)
    int32_t output_cols = 0;     // outputs per position (head_dim or n_embd)
    int x_bits = 0;              // input quantizer: x_int = clamp(round(x / x_scales[c]), x_bits signed)
    std::vector<double> x_scales;
    int input_delta_log2 = 0;    // x_int travels as x_int 2^input_delta_log2 (mod 2^64)
    int output_delta_log2 = 0;   // outputs are decoded at 2^output_delta_log2 ...
    double output_unit = 0;      // ... and one unit is worth output_unit (blocks: output_units)
    std::optional<StreamManifest> stream; // whole blocks only
    int32_t max_positions = 0;   // per session (sequence length)
    // Limits of this server.
    uint64_t max_request_bytes = 0; // largest EvalRequest body (max_positions positions)
    int32_t max_sessions = 0;
    double idle_timeout_seconds = 0;
    uint64_t server_key_bytes = 0;  // largest KeyUpload body

    std::string to_json() const;
    // Checks every field (a hostile or broken server gets a clear error, not a crash).
    static PartManifest from_json(std::string_view text);
    const tfhe::TfheParameters & parameters() const; // by name, hash-checked by the blobs
    // Ciphertexts per position: n_embd, or 2 n_embd for whole blocks (the stream, then its
    // normalization).
    int32_t input_cols() const { return stream ? 2 * n_embd : n_embd; }
    // The torus scale of input column c (c < input_cols()) and the real value of one unit of
    // output column c.
    int input_delta_log2_of(int32_t c) const;
    double output_unit_of(int32_t c) const;
    // Rows of n_embd reals -> the integers the circuit expects, input_cols() per row.
    std::vector<int64_t> quantize_inputs(std::span<const float> x) const;
};

enum class MessageType : uint16_t { KeyUpload = 1, EvalRequest = 2, EvalResponse = 3 };

struct KeyUpload {
    std::vector<uint8_t> server_key; // serialize_compressed_server_key blob
};

struct EvalRequest {
    uint32_t n_past = 0, n_new = 0;
    std::vector<uint8_t> inputs; // serialize_seeded_lwe_ciphertext_vector blob, n_new * n_embd
};

struct EvalResponse {
    uint32_t first = 0, n_new = 0;
    uint64_t bootstraps = 0;
    double seconds = 0;          // server evaluation time
    std::vector<uint8_t> outputs; // serialize_lwe_ciphertext_vector blob (big key), n_new * output_cols
};

std::string encode(const KeyUpload & message);
std::string encode(const EvalRequest & message);
std::string encode(const EvalResponse & message);
// Each fails with fhegpt::Error on a wrong magic, version or type, truncation or trailing bytes.
KeyUpload decode_key_upload(std::span<const uint8_t> bytes);
EvalRequest decode_eval_request(std::span<const uint8_t> bytes);
EvalResponse decode_eval_response(std::span<const uint8_t> bytes);

// An HTTP body (a std::string) as the bytes a decoder reads.
inline std::span<const uint8_t> message_bytes(const std::string & body) {
    return {reinterpret_cast<const uint8_t *>(body.data()), body.size()};
}

// A transfer size as the server logs it and the client reports it: "2187 B", "1024.6 KiB",
// "57.4 MiB".
std::string format_bytes(uint64_t bytes);

// "Bearer TOKEN" -> TOKEN; empty if the header is not of that form.
std::string bearer_token(std::string_view authorization);

} // namespace fhegpt::net
