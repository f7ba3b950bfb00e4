export const APP_HTML =
  "<!doctype html><title>confab</title><script src=/app.js type=module></script>";
export const APP_CSS = "";
