% The program's own spellings of the emotions ('Anger' ... 'Calm'), for its networks' domains
% and its answers; the spec maps the recogniser's classes onto them by a class map and the
% data set's Emo8 labels by a label table read from a file.
nn(expr, [F], E, ['Anger', 'Disgust', 'Fear', 'Happiness', 'Sadness', 'Surprise', 'Calm']) :: expression(F, E).
nn(scene_emotion, [I], E, ['Anger', 'Disgust', 'Fear', 'Happiness', 'Sadness', 'Surprise', 'Calm']) :: scene_says(I, E).

t(0.5)::face_decides.

emotion([F|_], I, E) :- face_decides, expression(F, E).
emotion([F|_], I, E) :- \+ face_decides, scene_says(I, E).
emotion([], I, E) :- scene_says(I, E).
