% Consulted by consult_rules.pl.
neighbour(john). neighbour(mary).
