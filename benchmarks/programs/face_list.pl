% Variable-length face lists (benchmarks/logic_programs.py, part a).
% An image has 0-3 faces, largest first: [F1, F2, F3]. The final emotion is read from the first
% face that is "used" (one learnable probability, one independent event per face), else from
% the scene. One circuit per face count.
nn(scene_net, [X], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: scene_emotion(X, E).
nn(face_net, [X], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: face_emotion(X, E).
t(0.6) :: use_face(F).

final_emotion([], S, E) :- scene_emotion(S, E).
final_emotion([F|Fs], S, E) :- use_face(F), face_emotion(F, E).
final_emotion([F|Fs], S, E) :- \+ use_face(F), final_emotion(Fs, S, E).
