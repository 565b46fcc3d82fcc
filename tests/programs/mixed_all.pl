% A mix: AD with body and variables, flexible probability, negation, findall, evidence.
:- use_module(library(lists)).
img(a). img(b).
0.4::seen(X, cat); 0.6::seen(X, dog) :- img(X).
conf(cat, 0.9). conf(dog, 0.5).
P::sure(X) :- img(X), seen(X, C), conf(C, P).
doubt(X) :- img(X), \+ sure(X).
n_sure(N) :- findall(X, (img(X), sure(X)), L), length(L, N).
evidence(doubt(b), false).
query(n_sure(_)). query(seen(a, _)). query(doubt(a)).
