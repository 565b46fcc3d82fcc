% Term inspection builtins: functor/3, arg/3, atom_length/2, var/nonvar, ==.
0.5::thing(box(1, 2)). 0.25::thing(ball(7)).
name_of(N) :- thing(T), functor(T, N, _).
second(A) :- thing(T), functor(T, _, 2), arg(2, T, A).
boxed :- thing(T), functor(T, N, _), N == box.
not_box :- thing(T), T \= box(_, _).
query(name_of(_)). query(second(_)). query(boxed). query(not_box).
