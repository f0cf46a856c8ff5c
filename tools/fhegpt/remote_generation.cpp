#include "remote_generation.h"

#include "common/error.h"
#include "quantized_part.h"

#include <cstdio>
#include <memory>
#include <unistd.h>

namespace fhegpt::cli {

using net::format_bytes;

std::unique_ptr<net::RemotePart> install_remote_part(model::Gpt2Context & ctx, const model::Gpt2Model & model,
                                                     const std::string & url, const std::string & part_text, int n_bits,
                                                     bool progress, bool recompute) {
    const PartSpec part = parse_part(part_text, model.hparams);
    std::fprintf(stderr, "connecting to %s for %s\n", url.c_str(), part.text().c_str());
    auto remote = std::make_unique<net::RemotePart>(url, part.text(), n_bits, model.hparams.n_embd, recompute);
    const net::PartManifest & m = remote->manifest();
    const int32_t expected_cols = part.head >= 0 ? model.hparams.n_embd / model.hparams.n_head : model.hparams.n_embd;
    if (m.output_cols != expected_cols) fail("{} answers {} values per position, {} needs {}", url, m.output_cols, part.text(), expected_cols);
    std::fprintf(stderr, "%s at %d bits on %s (%s): keys generated here in %.1f s, evaluation keys uploaded (%s) in %.1f s\n",
                 m.part.c_str(), m.n_bits, url.c_str(), m.parameter_set.c_str(), remote->keygen_seconds(),
                 format_bytes(remote->key_upload_bytes()).c_str(), remote->upload_seconds());
    if (progress) {
        // On a terminal, a live line while the server works (polled about once a second), on a
        // line of its own below the text so far, replaced by the evaluation's summary line.
        auto live_line = std::make_shared<bool>(false); // written by the poller, then by the caller
        if (isatty(fileno(stderr)))
            remote->on_progress = [live_line](int32_t first, int32_t n, int64_t done, int64_t total, double seconds) {
                std::fprintf(stderr, "%s  [rows %d..%d: %lld / %lld PBS, %.0f s]", *live_line ? "\r\033[K" : "\n",
                             first, n - 1, (long long)done, (long long)total, seconds);
                *live_line = true;
            };
        remote->on_run = [live_line](const net::RemoteRunRecord & r) {
            std::fprintf(stderr, "%s  [rows %d..%d: %llu PBS, %.1f s on the server, %.1f s in all; sent %s, received %s]\n",
                         *live_line ? "\r\033[K" : "", r.first, r.n - 1, (unsigned long long)r.bootstraps,
                         r.server_seconds, r.seconds, format_bytes(r.bytes_sent).c_str(),
                         format_bytes(r.bytes_received).c_str());
            *live_line = false;
        };
    }
    if (part.blocks)
        ctx.set_block_range(part.block_range(), remote->block_seam());
    else if (part.head >= 0)
        ctx.set_head_attention(part.layer, part.head, remote->head_seam());
    else
        ctx.set_layer_attention(part.layer, remote->layer_seam());
    return remote;
}

RemoteTotals remote_totals(const net::RemotePart & remote) {
    RemoteTotals t;
    for (const net::RemoteRunRecord & r : remote.runs()) {
        ++t.evaluations;
        t.rows += r.n - r.first;
        t.bootstraps += r.bootstraps;
        t.bytes_sent += r.bytes_sent;
        t.bytes_received += r.bytes_received;
        t.seconds += r.seconds;
        t.server_seconds += r.server_seconds;
    }
    return t;
}

void print_remote_summary(const net::RemotePart & remote) {
    const RemoteTotals t = remote_totals(remote);
    std::fprintf(stderr,
                 "encrypted part on the server: %lld evaluations (%lld rows), %llu PBS, %.1f s on the server, %.1f s in all; "
                 "sent %s (keys %s), received %s\n",
                 (long long)t.evaluations, (long long)t.rows, (unsigned long long)t.bootstraps, t.server_seconds, t.seconds,
                 format_bytes(t.bytes_sent + remote.key_upload_bytes()).c_str(),
                 format_bytes(remote.key_upload_bytes()).c_str(), format_bytes(t.bytes_received).c_str());
}

} // namespace fhegpt::cli
