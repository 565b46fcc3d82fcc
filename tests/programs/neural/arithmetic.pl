% Arithmetic on two neural values of one image (two inputs of the same network).
:- use_module(library(lists)).
nn(val_net, [X], V, [0, 1, 2, 3]) :: val(X, V).
far(F, S) :- val(F, A), val(S, B), D is abs(A - B), D > 1.
total(F, S, T) :- val(F, A), val(S, B), sum_list([A, B], T).
