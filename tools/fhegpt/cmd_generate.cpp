// placeholder: being written
#include "commands.h"
namespace fhegpt::cli {
void add_generate_command(CLI::App &) {}
}
