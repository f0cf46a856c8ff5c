// placeholder: being written
#include "commands.h"
namespace fhegpt::cli {
void add_tokenize_command(CLI::App &) {}
}
