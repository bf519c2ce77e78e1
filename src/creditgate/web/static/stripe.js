// Stripe mode only (loaded after https://js.stripe.com/v3/): the card element that saves a
// card with the SetupIntent's client_secret, and the 3-D Secure step of a top-up.
(function () {
  "use strict";
  function start() {
    if (typeof Stripe === "undefined") { return; }
    var form = document.getElementById("stripe-card-form");
    if (form) {
      var stripe = Stripe(form.getAttribute("data-publishable-key"));
      var card = stripe.elements().create("card");
      card.mount("#card-element");
      var errors = document.getElementById("card-errors");
      form.addEventListener("submit", function (event) {
        if (form.elements.card.value) { return; }
        event.preventDefault();
        stripe.confirmCardSetup(form.getAttribute("data-client-secret"), { payment_method: { card: card } })
          .then(function (result) {
            if (result.error) {
              errors.textContent = result.error.message;
              errors.hidden = false;
              return;
            }
            form.elements.card.value = result.setupIntent.payment_method;
            form.submit();
          });
      });
    }
    var step = document.getElementById("stripe-3ds");
    if (step) {
      var payments = Stripe(step.getAttribute("data-publishable-key"));
      payments.confirmCardPayment(step.getAttribute("data-client-secret")).then(function (result) {
        if (!result.error) { window.location.assign(step.getAttribute("data-return-url")); return; }
        var note = document.createElement("p");
        note.className = "flash flash-error";
        note.setAttribute("role", "alert");
        note.textContent = result.error.message;
        step.appendChild(note);
      });
    }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
