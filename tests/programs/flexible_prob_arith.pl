% Flexible probabilities from arithmetic (the strength_prob pattern).
strength(img1, 2). strength(img2, 5). strength(img3, 9).
strength_prob(S, P) :- P is S / 10.
P::context_dom(I) :- strength(I, S), strength_prob(S, P).
0.5::face_clear(img1). 0.2::face_clear(img2). 0.9::face_clear(img3).
use_face(I) :- face_clear(I), \+ context_dom(I).
query(context_dom(I)) :- strength(I, _).
query(use_face(I)) :- strength(I, _).
