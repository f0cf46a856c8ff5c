// placeholder: being written
#include "commands.h"
namespace fhegpt::cli {
void add_perplexity_command(CLI::App &) {}
}
