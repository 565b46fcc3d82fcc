% Integer class ids, as DeepProbLog's own programs write them: the recogniser's basic-7 classes
% as 0..6, the Emo8 target as 0..7 (joy = 0 ... anticipation = 7), arithmetic between them.
nn(expr, [F], E, [0, 1, 2, 3, 4, 5, 6]) :: expression(F, E).
nn(scene_emo, [S], Y, [0, 1, 2, 3, 4, 5, 6, 7]) :: scene_emotion(S, Y).

% basic-7 id -> Emo8 id: angry -> anger, disgust, fear, happy -> joy, sad -> sadness, surprise, neutral -> trust
to_emo8(0, 6). to_emo8(1, 5). to_emo8(2, 2). to_emo8(3, 0). to_emo8(4, 4). to_emo8(5, 3). to_emo8(6, 1).

t(0.6)::trust_first_face.

emotion([F|_], S, Y) :- trust_first_face, expression(F, E), to_emo8(E, Z), Y is 0*7 + Z.
emotion([F|_], S, Y) :- \+ trust_first_face, scene_emotion(S, Y).
emotion([], S, Y) :- scene_emotion(S, Y).
