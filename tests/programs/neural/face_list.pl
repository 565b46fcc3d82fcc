% A variable-length face list (Faces = [tensor(face(I,1)), ..., tensor(face(I,n))]) and the scene.
nn(scene_net, [X], E, [happy, sad, neutral]) :: scene_emotion(X, E).
nn(face_net, [X], E, [happy, sad, neutral]) :: face_emotion(X, E).
0.6::use_face(F).
final_emotion([], S, E) :- scene_emotion(S, E).
final_emotion([F|Fs], S, E) :- use_face(F), face_emotion(F, E).
final_emotion([F|Fs], S, E) :- \+ use_face(F), final_emotion(Fs, S, E).
