#!/usr/bin/env bash
# Quality table and comparison grids of the shipped models against the official checkpoints
# and the trivial baselines on the RoadScene test split (the numbers in README.md#quality).
#
#   scripts/quality_report.sh [OUT_DIR] [SHARED_DIR]     (defaults: reports/quality ../shared)
#
# Imports the official checkpoints from SHARED_DIR/reference_models into OUT_DIR (never into
# the package), fuses the 50 test pairs with each model as the package runs it (mono output;
# the official MMDRFuse with its own min-max output mapping), and runs `lutfuse eval
# --baselines --grid`. Re-running reuses finished outputs; delete OUT_DIR to start over.
set -euo pipefail
OUT=${1:-reports/quality}
SHARED=${2:-../shared}
LUTFUSE=${LUTFUSE:-lutfuse}
TEST=$SHARED/data/roadscene/test
[ -d "$TEST/ir" ] || { echo "no RoadScene test split under $SHARED/data" >&2; exit 2; }
mkdir -p "$OUT/models" "$OUT/fused"

official_lut=$OUT/models/lutfuse-official.safetensors
official_mini=$OUT/models/mmdrfuse-official.safetensors
[ -f "$official_lut" ] || "$LUTFUSE" import-checkpoint lutfuse \
    --lut "$SHARED/reference_models/lutfuse/fine_tuned_lut.npy" \
    --context "$SHARED/reference_models/lutfuse/generator_context.pth" -o "$official_lut"
[ -f "$official_mini" ] || "$LUTFUSE" import-checkpoint mmdrfuse \
    --student "$SHARED/reference_models/mmdrfuse/student.model" -o "$official_mini"

fuse() {  # LABEL MODEL MAPPING
    echo "fusing the test split with $1 ..." >&2
    "$LUTFUSE" fuse --visible "$TEST/vi" --thermal "$TEST/ir" -o "$OUT/fused/$1" --model "$2" \
        --output-kind mono --luma-mapping "$3" >/dev/null
}
fuse "LUT-Fuse-official" "$official_lut" clamp
fuse "MMDRFuse-official" "$official_mini" minmax
fuse "lutfuse-mmlut" lutfuse-mmlut clamp
fuse "lutfuse-mini" lutfuse-mini clamp

labels=()
for name in LUT-Fuse-official MMDRFuse-official lutfuse-mmlut lutfuse-mini; do
    labels+=("$name=$OUT/fused/$name")
done
"$LUTFUSE" eval --ir "$TEST/ir" --vi "$TEST/vi" --baselines --out "$OUT/table" --force \
    --grid "$OUT/grids" --grid-stems FLIR_04269 FLIR_05005 FLIR_06282 --no-progress "${labels[@]}"
echo "table: $OUT/table.md  grids: $OUT/grids/" >&2
