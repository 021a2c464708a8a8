#!/bin/bash
#SBATCH -J demo-train
#SBATCH -N 2
#SBATCH --gres=gpu:4
#SBATCH -t 10
# A sample 2-node GPU job: unchanged Slurm habits, wherever the federation places it.
echo "federation job ${SFED_JOB_ID} (attempt ${SFED_ATTEMPT}) on pool ${SFED_POOL}, Slurm job ${SLURM_JOB_ID}"
echo "nodes: ${SLURM_JOB_NODELIST}"
srun bash -c 'echo "task ${SLURM_PROCID} on ${SLURMD_NODENAME}: ${SLURM_GPUS_ON_NODE} GPUs"'
