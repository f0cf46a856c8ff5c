// The client side of protocol.h: one connection to a part server and one session on it.
//
// PartClient speaks the protocol (info, session, eval, close) and counts bytes each way.
// RemotePart is what the model's attention or block seam drives: it reads the server's manifest,
// generates the client's keys for the server's parameter set (the secret key never leaves this
// process), uploads the compressed evaluation keys once, and then, position by position,
// quantizes the part's inputs with the manifest's quantizer, encrypts them (seeded: 8 bytes a
// ciphertext), sends them, and decrypts and decodes the rows that come back. The server keeps
// the encrypted key/value cache, so each call sends only its new positions.
#pragma once

#include "model/attention.h"
#include "model/block_range.h"
#include "net/protocol.h"
#include "tfhe/keyset.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace httplib {
class Client;
}

namespace fhegpt::net {

class PartClient {
public:
    // url: "http://HOST:PORT". read_timeout_seconds bounds one request (an evaluation).
    explicit PartClient(const std::string & url, double read_timeout_seconds = 3600);
    ~PartClient(); // closes the session, if any (errors ignored)
    PartClient(const PartClient &) = delete;
    PartClient & operator=(const PartClient &) = delete;

    PartManifest info();
    // Uploads the compressed server key and starts a session. expected_part (optional): the
    // server refuses the session, before the upload, if it serves another part.
    void open_session(const tfhe::CompressedServerKey & key, const std::string & expected_part = {});
    EvalResponse eval(const EvalRequest & request);
    // The running evaluation's bootstraps {done, total}, over a connection of its own: it may be
    // called from another thread while eval() waits.
    std::pair<int64_t, int64_t> progress();
    void close_session();

    bool has_session() const { return !token_.empty(); }
    uint64_t bytes_sent() const { return bytes_sent_; }
    uint64_t bytes_received() const { return bytes_received_; }
    const std::string & url() const { return url_; }

private:
    std::string url_;
    std::unique_ptr<httplib::Client> http_, progress_http_;
    std::string token_;
    uint64_t bytes_sent_ = 0, bytes_received_ = 0;
};

struct RemoteRunRecord {
    int32_t first = 0, n = 0;      // rows first..n-1
    uint64_t bootstraps = 0;
    double server_seconds = 0;     // evaluation on the server
    double seconds = 0;            // the whole call: encrypt, transfer, evaluate, decrypt
    uint64_t bytes_sent = 0, bytes_received = 0;
};

class RemotePart {
public:
    // Connects to `url`, checks its manifest against `expected_part` and `expected_bits`
    // (empty / 0: anything) and the model's width, generates keys and opens a session.
    // recompute: send every position at every call and have the server evaluate the whole
    // sequence again (n_past = 0), as the founding document's design does; for comparison.
    RemotePart(const std::string & url, const std::string & expected_part, int expected_bits, int32_t n_embd,
               bool recompute = false);

    const PartManifest & manifest() const { return manifest_; }
    uint64_t key_upload_bytes() const { return key_upload_bytes_; }
    double keygen_seconds() const { return keygen_seconds_; }
    double upload_seconds() const { return upload_seconds_; }

    // Rows n_past..n_past+n_new-1 of the part for x [n_new, n_embd]: decoded integers
    // [n_new, output_cols] (one unit of column c: manifest().output_unit_of(c)). n_past is 0 (a new sequence) or
    // the positions sent so far.
    std::vector<int64_t> run(std::span<const float> x, int32_t n_new, int32_t n_past);
    const std::vector<RemoteRunRecord> & runs() const { return runs_; }
    // Called after every run (progress lines).
    std::function<void(const RemoteRunRecord &)> on_run;
    // Called from a polling thread about once a second while the server evaluates: rows
    // first..n-1, bootstraps done and total, seconds since the request left.
    std::function<void(int32_t first, int32_t n, int64_t done, int64_t total, double seconds)> on_progress;

    // Seams that send the part's work here (this object must outlive them): a head
    // (output_cols = head_dim), a whole attention block (output_cols = n_embd), or a run of whole
    // blocks (the residual stream where the run starts in, where it ends or the final hidden
    // state out).
    std::unique_ptr<model::HeadAttention> head_seam();
    std::unique_ptr<model::LayerAttention> layer_seam();
    std::unique_ptr<model::BlockRange> block_seam();

private:
    EvalResponse eval_with_progress(const EvalRequest & request, int32_t first, int32_t n);

    PartClient client_;
    PartManifest manifest_;
    std::optional<tfhe::ClientKey> key_;
    uint64_t key_upload_bytes_ = 0;
    double keygen_seconds_ = 0, upload_seconds_ = 0;
    bool recompute_ = false;
    int32_t n_past_ = 0;
    std::vector<float> x_history_; // recompute: the inputs of every position so far
    std::vector<RemoteRunRecord> runs_;
};

} // namespace fhegpt::net
