# How heavy commands run. local (default): in this shell; parallel jobs are worker processes (--nj).
# slurm: training and decoding go through srun (edit the resources for your cluster).
cmd_backend="${cmd_backend:-local}"
case "$cmd_backend" in
  local) train_cmd=""; decode_cmd="" ;;
  slurm) train_cmd="srun --gres=gpu:1 --cpus-per-task=8 --mem=64G --time=72:00:00"
         decode_cmd="srun --gres=gpu:1 --cpus-per-task=4 --mem=32G" ;;
  *) echo "cmd.sh: unknown cmd_backend $cmd_backend (local or slurm)" >&2; exit 2 ;;
esac
