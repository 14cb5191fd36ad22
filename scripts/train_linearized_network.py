"""Rule train_linearized_network: PGD training continued on nt.linearize (supp. E.1)."""

from train_dynamics_network import main

if __name__ == "__main__":
    main(snakemake)
