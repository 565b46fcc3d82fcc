% A query with two free variables.
0.5::edge(a, b). 0.4::edge(b, c). 0.9::edge(a, c).
query(edge(X, Y)).
