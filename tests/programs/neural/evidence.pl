% Evidence in the program (both forms) conditioning a neural query.
nn(b_net, [X]) :: burglary(X).
0.2::earthquake.
0.5::quake_seen.
0.9::alarm(X) :- burglary(X).
0.8::alarm(X) :- earthquake, X = X.
0.7::earthquake :- quake_seen.
evidence(quake_seen, false).
evidence(\+ earthquake).
