// What `generate --server` and `demo` share: connecting to a part server, installing the
// remote part behind the model's seam, and reporting its costs (progress lines on stderr).
#pragma once

#include "model/gpt2_forward.h"
#include "net/part_client.h"

#include <memory>
#include <string>

namespace fhegpt::cli {

// Connects to `url`, checks that it serves `part` (and n_bits, unless 0), generates keys,
// uploads them and installs the part in ctx. progress: one line per evaluation on stderr.
// recompute: no server-side cache, every token sends the whole sequence (for comparison).
std::unique_ptr<net::RemotePart> install_remote_part(model::Gpt2Context & ctx, const model::Gpt2Model & model,
                                                     const std::string & url, const std::string & part, int n_bits,
                                                     bool progress, bool recompute = false);

// Totals over a part's evaluations.
struct RemoteTotals {
    int64_t evaluations = 0, rows = 0;
    uint64_t bootstraps = 0, bytes_sent = 0, bytes_received = 0;
    double seconds = 0, server_seconds = 0;
};
RemoteTotals remote_totals(const net::RemotePart & remote);
void print_remote_summary(const net::RemotePart & remote);

} // namespace fhegpt::cli
