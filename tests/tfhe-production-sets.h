// The production parameter sets that the slow TFHE tests (test-tfhe-pbs-production,
// test-tfhe-noise) check: every production set without a fine bootstrapping key, and the fine
// key of a _MIXED set, as its own set NAME_FINE (TfheParameters::fine_bootstrap_parameters()),
// when no set of the first kind has the same blind rotation (GLWE shape and noise,
// decomposition, grouping factor): a _MIXED set's standard key is its base set's, and most fine
// keys have the blind rotation of a _PBS_L* set or of PARAM_5BIT_2M128.
#pragma once

#include "tfhe/commons/parameters.h"

#include <map>
#include <string>
#include <vector>

namespace fhegpt::tfhe::test_sets {

inline bool same_blind_rotation(const TfheParameters & a, const TfheParameters & b) {
    return a.glwe_dimension == b.glwe_dimension && a.polynomial_size == b.polynomial_size &&
           a.glwe_noise == b.glwe_noise && a.pbs_base_log == b.pbs_base_log &&
           a.pbs_level_count == b.pbs_level_count && a.grouping_factor == b.grouping_factor;
}

// Parameters of the fine keys, by NAME_FINE (stable references).
inline std::map<std::string, TfheParameters> & fine_sets_under_test() {
    static std::map<std::string, TfheParameters> sets;
    return sets;
}

inline std::vector<std::string> production_sets_under_test() {
    std::vector<std::string> names;
    std::vector<const TfheParameters *> single;
    for (const TfheParameters * p : production_parameter_sets())
        if (!p->has_fine_bootstrap()) {
            names.push_back(p->name);
            single.push_back(p);
        }
    for (const TfheParameters * p : production_parameter_sets()) {
        if (!p->has_fine_bootstrap()) continue;
        const TfheParameters fine = p->fine_bootstrap_parameters();
        bool covered = false;
        for (const TfheParameters * s : single) covered = covered || same_blind_rotation(*s, fine);
        if (covered) continue;
        names.push_back(p->name + "_FINE");
        fine_sets_under_test().emplace(names.back(), fine);
    }
    return names;
}

inline const TfheParameters & parameters_under_test(const std::string & name) {
    const auto it = fine_sets_under_test().find(name);
    return it != fine_sets_under_test().end() ? it->second : parameters_by_name(name);
}

} // namespace fhegpt::tfhe::test_sets
