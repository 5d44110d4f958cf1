"""Danlu's core: plain Python (no gradio; no torch at import time). The seams: core.rundir (the
run record), core.executors (where a job's processes run), core.knobs (environment variables),
core.trust (values from the page).

Words, as the code uses them (the page may say them more plainly):
    job, run      a job is one row of the job table: one attempt. Its run directory (core.rundir) may
                  hold several attempts of one training run (each resume is a new job).
    recipe        a script under core/recipes/ that torchrun starts (train, evaluate, merge); what the
                  recipes share lives in core/engine/ (engine.run.run_recipe, data, checkpoints). A recipe
                  *preset* (presets/recipes/*.yaml, the Recipe box, preset kind "recipe") is a named set
                  of training settings.
    template      a starter preset (presets/templates/: a model, a recipe preset, sample data; the
                  Templates tab). How a model lays out a conversation is the *chat* template
                  (TrainConfig.chat_template, core.data.render.apply_chat_template_choice); only chat
                  code and `chat --template` say "template" for it.
    demo          the shared chat-only app (core.demos, webui/demo_app.py, `python app.py demo`). The tiny
                  built-in model is the demo *model* (core.demo_model, builtin:danlu-tiny), and the
                  preset called "demo" is the template that trains it. A Gradio app object is `blocks`.
    merge, export merge is the job that folds an adapter into its base model (job kind "merge",
                  `python app.py merge`, core.recipes.merge); what it writes is an export
                  (exports/<name>/, core.export, the Export tab).
    cancel, stop  to cancel is a person's request to end a job (launcher.cancel, `jobs cancel`,
                  cancel.request, CANCELLING then CANCELLED); the page's button says Stop and the state
                  word is "Stopping". A rank *stops* on SIGTERM after saving a checkpoint, and
                  stopped.json says it stopped early, whoever sent the signal.
"""
