% call/N and =.. (meta-calls).
0.4::f(1). 0.6::f(2).
g(X) :- G =.. [f, X], call(G).
h(X) :- call(f, X).
query(g(_)). query(h(2)).
