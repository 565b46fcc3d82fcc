% DeepProbLog-style: the emotion of a photo from its variable-length list of faces (largest
% first) and its scene. The query template (specs/face_list.toml) is
% emotion(Faces, tensor(scene(I)), E) with Faces = [tensor(face(I,1)), ..., tensor(face(I,n))];
% one circuit is compiled per face count n.
%
% Walking down the list, each face is trusted with the learnable probability t(trust_face(F))
% (one t() shared by every face: a geometric trust, largest face first); if no face is
% trusted, the scene decides when it is read as reliable (t(scene_reliable), one ground fact),
% and "neutral" otherwise. EM counts one ground trust_face fact per face (em.lfi_step).

nn(scene_net, [S], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: scene_emotion(S, E).
nn(face_net, [F], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: face_emotion(F, E).

t(0.5)::trust_face(F).
t(0.8)::scene_reliable.

emotion([], S, E) :- scene_reliable, scene_emotion(S, E).
emotion([], S, neutral) :- \+ scene_reliable.
emotion([F|Rest], S, E) :- trust_face(F), face_emotion(F, E).
emotion([F|Rest], S, E) :- \+ trust_face(F), emotion(Rest, S, E).
