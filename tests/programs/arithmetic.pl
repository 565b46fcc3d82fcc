% Arithmetic builtins and comparisons on probabilistic choices (the abs-difference pattern).
0.2::face(1); 0.3::face(2); 0.5::face(4).
0.5::scene(1); 0.5::scene(3).
far :- face(F), scene(S), D is abs(F - S), D > 1.
equal :- face(F), scene(S), F =:= S.
diff(D) :- face(F), scene(S), D is F - S.
prod(P) :- face(F), scene(S), P is F * S mod 5.
idiv(Q) :- face(F), Q is F // 2.
mm(M) :- face(F), scene(S), M is max(F, S) - min(F, S).
fl(X) :- face(F), X is F / 4.
query(far). query(equal). query(diff(_)). query(prod(_)). query(idiv(_)). query(mm(_)). query(fl(_)).
