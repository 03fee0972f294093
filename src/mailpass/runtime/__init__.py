"""How a MailPass process runs, apart from what it does: the garbage collector's tuning
(``heap``), uvicorn's HTTP protocol with coalesced writes (``http``) and the supervisor of
``--processes`` (``supervisor``). Nothing here knows of mail."""
