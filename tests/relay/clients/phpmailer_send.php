<?php
// Sends one message through the relay with Debian's PHPMailer, as a PHP application
// configured with the relay's settings would: STARTTLS, the API key as the password.
require '/usr/share/php/libphp-phpmailer/autoload.php';

use PHPMailer\PHPMailer\PHPMailer;
use PHPMailer\PHPMailer\SMTP;

$mail = new PHPMailer(true);
$mail->isSMTP();
$mail->Host = 'localhost';
$mail->Port = (int) getenv('RELAY_PORT');
$mail->SMTPAuth = true;
$mail->Username = 'mailpass';
$mail->Password = getenv('RELAY_KEY');
$mail->SMTPSecure = PHPMailer::ENCRYPTION_STARTTLS;
// The server's replies, to show the one to DATA.
$replies = [];
$mail->SMTPDebug = SMTP::DEBUG_SERVER;
$mail->Debugoutput = function ($line, $level) use (&$replies) {
    if (str_starts_with($line, 'SERVER -> CLIENT: ')) {
        $replies[] = trim(substr($line, strlen('SERVER -> CLIENT: ')));
    }
};
$mail->SMTPOptions = ['ssl' => [
    'cafile' => getenv('RELAY_CA'),
    'verify_peer' => true,
    'verify_peer_name' => true,
]];
$mail->setFrom('news@shop.example', 'Shop');
$mail->addAddress('ann@example.com', 'Ann');
$mail->addBCC('dan@example.com');
$mail->Subject = 'Sent with PHPMailer';
$mail->isHTML(true);
$mail->Body = '<p>Hello from <b>PHPMailer</b></p>';
$mail->AltBody = 'Hello from PHPMailer';
$mail->addStringAttachment(base64_decode(getenv('ATTACHMENT_B64')), 'order.pdf');
$mail->addCustomHeader('X-MailPass-Tags', 'php, receipt');
$mail->send();
$accepted = array_values(array_filter($replies, fn ($r) => str_starts_with($r, '250 2.0.0 OK <')));
echo json_encode(['response' => $accepted[0] ?? null, 'messageId' => $mail->getLastMessageID()]);
