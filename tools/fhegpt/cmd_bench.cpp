// placeholder: being written
#include "commands.h"
namespace fhegpt::cli {
void add_bench_command(CLI::App &) {}
}
