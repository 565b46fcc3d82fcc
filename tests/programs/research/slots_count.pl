% Separate tensors: the largest face's recogniser logits through a head, its presence flag as a
% fact (face slot atoms, as the seed program writes them), and one head over every slot's
% logits, every presence flag and the face count; a learned choice between the two, with
% negation when the largest face is absent.
nn(slot_emotion, [I, S], E, [joy, trust, fear, surprise, sadness, disgust, anger, anticipation]) :: slot_says(I, S, E).
nn(present, [I, S]) :: present(I, S).
nn(crowd, [I], E, [joy, trust, fear, surprise, sadness, disgust, anger, anticipation]) :: crowd_says(I, E).

t(_)::use_crowd; t(_)::use_faces.

emotion(I, E) :- use_crowd, crowd_says(I, E).
emotion(I, E) :- use_faces, present(I, face1), slot_says(I, face1, E).
emotion(I, E) :- use_faces, \+ present(I, face1), crowd_says(I, E).
