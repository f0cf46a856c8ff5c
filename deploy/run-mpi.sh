#!/bin/sh
# One logical fhegpt-server over N MPI ranks (Open MPI): rank 0 serves HTTP, the others take
# their share of every bootstrap batch. Sets Open MPI's recovery parameters so that a rank that
# dies ends only the evaluation under way (its client gets an error, the server goes on with
# the ranks left) instead of the whole job.
#
# Usage: deploy/run-mpi.sh N [MPIRUN_OPTIONS... --] fhegpt-server [SERVER_ARGS...]
#   e.g. deploy/run-mpi.sh 2 build/bin/fhegpt-server -m models/fhegpt-tiny --part layer0.head0
#   On several machines: deploy/run-mpi.sh 8 --hostfile hosts -- build/bin/fhegpt-server ...
# Threads per rank: FHEGPT_THREADS (exported to every rank), else all cores of each machine.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 N [MPIRUN_OPTIONS... --] fhegpt-server [SERVER_ARGS...]" >&2; exit 2; }
n="$1"
shift
mpirun_options=
case " $* " in
*" -- "*)
    while [ "$1" != "--" ]; do mpirun_options="$mpirun_options $1"; shift; done
    shift ;;
esac
command -v mpirun >/dev/null || { echo "run-mpi.sh: mpirun is not installed (scripts/install-deps.sh installs Open MPI)" >&2; exit 3; }
# A rank that dies must not abort the job (rank 0 notices through its deadlines).
export OMPI_MCA_orte_enable_recovery=1 OMPI_MCA_orte_abort_on_non_zero_status=0
# Containers and CI run as root; Open MPI refuses that unless told twice.
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
env_options=
[ -z "${FHEGPT_THREADS:-}" ] || env_options="-x FHEGPT_THREADS"
# shellcheck disable=SC2086 # word splitting of the option lists is intended
exec mpirun -np "$n" $env_options $mpirun_options "$@"
