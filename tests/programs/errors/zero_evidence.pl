% Evidence with probability 0.
0.0::a.
0.5::b.
evidence(a).
query(b).
