#!/usr/bin/env bash
# NAT lab: the traversal matrix again, with 100 ms delay and 3 % loss each
# way on every NAT link, 500 messages per pair (see nat_matrix_test.sh).
# usage: bash tests/integration/nat_impaired_test.sh BIN_DIR
IMPAIRED=1 exec bash "$(dirname "${BASH_SOURCE[0]}")/nat_matrix_test.sh" "$@"
