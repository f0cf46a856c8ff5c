// fhegpt tokenize: text -> GPT-2 token ids, or ids -> text with --decode. Reads standard
// input or -f FILE; writes ids on one line, space-separated, or the decoded bytes exactly.
#include "commands.h"
#include "common/error.h"
#include "model/gpt2_tokenizer.h"

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace fhegpt::cli {

namespace {

struct TokenizeOptions {
    std::string model_dir;
    std::string input_path; // empty: standard input
    bool decode = false;
};

// The whole input as bytes (binary-safe: text need not be UTF-8).
std::string read_all(const std::string & path) {
    const std::string name = path.empty() ? "<stdin>" : path;
    std::FILE * f = path.empty() ? stdin : std::fopen(path.c_str(), "rb");
    if (f == nullptr) fail("{}: cannot open: {}", name, std::strerror(errno));
    std::string data;
    char buffer[1 << 16];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) data.append(buffer, n);
    const bool failed = std::ferror(f) != 0;
    if (f != stdin) std::fclose(f);
    if (failed) fail("{}: read error", name);
    return data;
}

// Whitespace-separated decimal ids; the range is checked by the tokenizer.
std::vector<int32_t> parse_ids(std::string_view text, std::string_view name) {
    std::vector<int32_t> ids;
    size_t pos = 0;
    auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
    while (true) {
        while (pos < text.size() && is_space(text[pos])) ++pos;
        if (pos == text.size()) break;
        size_t end = pos;
        while (end < text.size() && !is_space(text[end])) ++end;
        const std::string_view word = text.substr(pos, end - pos);
        int32_t id = 0;
        auto [ptr, ec] = std::from_chars(word.data(), word.data() + word.size(), id);
        if (ec != std::errc() || ptr != word.data() + word.size()) {
            fail("{}: '{}' is not a token id", name, word.substr(0, 40));
        }
        ids.push_back(id);
        pos = end;
    }
    return ids;
}

void write_all(std::string_view bytes) {
    if (std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size() ||
        std::fflush(stdout) != 0) {
        fail("<stdout>: write error: {}", std::strerror(errno));
    }
}

void run_tokenize(const TokenizeOptions & opt) {
    const auto tokenizer = model::Gpt2Tokenizer::load(opt.model_dir);
    const std::string input = read_all(opt.input_path);
    if (opt.decode) {
        const auto ids = parse_ids(input, opt.input_path.empty() ? "<stdin>" : opt.input_path);
        write_all(tokenizer.decode(ids));
        return;
    }
    const std::vector<int32_t> ids = tokenizer.encode(input);
    std::string line;
    line.reserve(ids.size() * 6 + 1);
    for (size_t i = 0; i < ids.size(); ++i) {
        if (i > 0) line += ' ';
        line += std::to_string(ids[i]);
    }
    line += '\n';
    write_all(line);
}

} // namespace

void add_tokenize_command(CLI::App & app) {
    auto opt = std::make_shared<TokenizeOptions>();
    CLI::App * cmd = app.add_subcommand(
        "tokenize", "Text to GPT-2 token ids (one line, space-separated), or back with --decode");
    cmd->add_option("-m,--model", opt->model_dir, "Directory with vocab.json and merges.txt")
        ->required();
    cmd->add_option("-f,--file", opt->input_path, "Read this file instead of standard input");
    cmd->add_flag("--decode", opt->decode,
                  "Read space-separated ids and write the bytes they stand for");
    cmd->callback([opt] { run_tokenize(*opt); });
}

} // namespace fhegpt::cli
