% Negation with variables bound in the body (stratified).
item(1). item(2). item(3).
0.4::broken(1). 0.5::broken(2). 0.1::broken(3).
works(X) :- item(X), \+ broken(X).
all_work :- \+ some_broken.
some_broken :- broken(_).
query(works(X)).
query(all_work).
